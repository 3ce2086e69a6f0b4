DROP TABLE vehicle_models;
DROP TABLE vehicle_makes;
