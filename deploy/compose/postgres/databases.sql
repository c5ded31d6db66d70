-- Run once, when the PostgreSQL container starts on an empty volume: one database per
-- service, owned by POSTGRES_USER (who runs this script). Each service keeps its own tables
-- and its own migration history, so two services never share a database.
CREATE DATABASE users;
CREATE DATABASE catalog;
CREATE DATABASE orders;
CREATE DATABASE notifications;
CREATE DATABASE console;
