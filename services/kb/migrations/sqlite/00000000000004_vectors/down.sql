DROP TABLE chunk_vectors;
