DROP TABLE vehicles;
DROP TABLE client_sessions;
DROP TABLE sign_in_links;
DROP TABLE clients;
