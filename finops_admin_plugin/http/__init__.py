"""HTTP plumbing of the admin API: the error body, the database gate, security headers, the
bounded server, and the OpenAPI error contract. Nothing here knows a resource."""
