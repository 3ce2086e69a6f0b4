DROP TABLE edges;
DROP TABLE entities;
