"""What Globus Compute accepts, on every site and either transport.

The embedded endpoint runs the same engine as a deployed one, so a campaign
rehearsed locally meets the limits it will meet at a facility.
"""

from __future__ import annotations

#: The web service refuses a submission (one batch request) larger than this.
SUBMIT_LIMIT_BYTES = 10 * 1000 * 1000
#: An engine refuses a task's result larger than this, as sent (after base64):
#: `globus_compute_endpoint.engines.helper`'s limit.
RESULT_LIMIT_BYTES = 10 * 2**20
