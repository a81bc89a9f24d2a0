-- One database per service in the local stack's PostgreSQL (run once, on an empty volume).
CREATE DATABASE hello;
CREATE DATABASE messages;
CREATE DATABASE notes;
CREATE DATABASE chat;
