"""The PostgreSQL warehouse: schema, loads, materialized views."""
