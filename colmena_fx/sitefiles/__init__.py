"""Cluster site files: check them on any machine, turn them into an endpoint's files.

`validate` loads a site file into the real engine, provider and launcher objects;
`render` writes what an administrator installs with `globus-compute-endpoint`;
`listing` shows the sites of a federation.
"""

from __future__ import annotations

from colmena_fx.sitefiles.listing import SiteRow
from colmena_fx.sitefiles.listing import federation_sites
from colmena_fx.sitefiles.render import CONFIG_FILE
from colmena_fx.sitefiles.render import SCHEMA_FILE
from colmena_fx.sitefiles.render import TEMPLATE_FILE
from colmena_fx.sitefiles.render import TEMPLATE_VARIABLES
from colmena_fx.sitefiles.render import deployment_commands
from colmena_fx.sitefiles.render import render_endpoint_files
from colmena_fx.sitefiles.validate import STAND_IN_ADDRESS
from colmena_fx.sitefiles.validate import ValidatedSite
from colmena_fx.sitefiles.validate import validate_site
from colmena_fx.sitefiles.validate import validate_site_file

__all__ = [
    "CONFIG_FILE",
    "SCHEMA_FILE",
    "STAND_IN_ADDRESS",
    "TEMPLATE_FILE",
    "TEMPLATE_VARIABLES",
    "SiteRow",
    "ValidatedSite",
    "deployment_commands",
    "federation_sites",
    "render_endpoint_files",
    "validate_site",
    "validate_site_file",
]
