"""HTTP routers of the admin API (base path /finops/admin)."""
