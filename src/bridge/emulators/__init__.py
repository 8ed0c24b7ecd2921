"""Faithful emulators of the Kong Admin API and the Consul HTTP API, on real sockets."""

from ..extras import EMULATOR_MODULES, require_extra

# Every emulator module passes through here first: fail with the extra's name, not with
# "No module named 'starlette'" from somewhere inside.
require_extra("emulators", EMULATOR_MODULES, "the emulators")
