"""The `finops` command line and the `finops dev` stack: above both the pipeline and the admin plugin.

Dependencies run one way: `finops_cli` -> `finops_admin_plugin` -> `finops_pipeline`.
The Dagster instance and workspace files `finops dev` writes come from `templates/`
(package data), so the stack runs from an installed package as well as from a checkout.
"""
