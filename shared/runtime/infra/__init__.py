"""Broker and database for development, tests and CI: embedded, containers or external."""
