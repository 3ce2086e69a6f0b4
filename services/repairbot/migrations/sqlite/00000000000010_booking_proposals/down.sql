DROP TABLE booking_proposals;
