-- One database per service (each owns its data; none reads another's tables).
-- Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d/) as
-- POSTGRES_USER, so the compose user `portail` owns them all. In production each service
-- should get its own role with rights on its own database only (see k8s/secret.yaml).
CREATE DATABASE accounts OWNER portail;
CREATE DATABASE reservations OWNER portail;
CREATE DATABASE billing OWNER portail;
CREATE DATABASE requests OWNER portail;
CREATE DATABASE notifications OWNER portail;
CREATE DATABASE gateway OWNER portail;
