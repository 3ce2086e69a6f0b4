DROP TABLE service_offerings;
