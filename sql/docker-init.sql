-- Creates the Sentinela archive next to Airflow's metadata database (docker-compose only).
CREATE USER sentinela WITH PASSWORD 'sentinela';
CREATE DATABASE sentinela OWNER sentinela;
