"""Typed errors of self-registration. All derive from :class:`RegistrationError`."""

from __future__ import annotations


class RegistrationError(Exception):
    """Registering or unregistering on Kong failed; the message says what and why."""


class ServiceConfigError(RegistrationError):
    """The service config file is missing, unreadable or invalid."""


class GatewayUnavailable(RegistrationError):
    """Kong stayed unreachable (or kept answering 5xx/429) for the whole retry budget."""


class OwnershipConflict(RegistrationError):
    """An entity with our name exists in Kong without our owner tag."""


# The Microkubes library's name, for code written against it.
RegistrationException = RegistrationError
