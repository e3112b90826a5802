"""Colmena 0.7's programming surface on top of a federation.

A Colmena program runs here after changing `colmena.` to `colmena_fx.colmena.` in
its imports and replacing its Parsl configuration and task server with a
federation file and `FederationTaskServer` (docs/from-colmena.md). The modules
mirror Colmena's (`models`, `queue`, `thinker`, `task_server`, `exceptions`);
each is a thin layer over colmena-fx's own API, which new programs use directly.
"""

from __future__ import annotations
