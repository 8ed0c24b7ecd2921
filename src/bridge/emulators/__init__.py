"""Faithful emulators of the Kong Admin API and the Consul HTTP API, on real sockets."""
