"""Kong's schemas as plain Python: fields, validators, bundled plugins, upstream health checks.

No server dependencies: both the Kong emulator and the bridge import these.
"""
