"""Checks across fields, run after each field is valid."""

from __future__ import annotations

import os


def check_instance(model):
    if model.security_protocol.startswith("SASL_"):
        for name in ("sasl_plain_username", "sasl_plain_password"):
            if not getattr(model, name):
                raise ValueError(f"{name} is required when security_protocol is {model.security_protocol}")
    for name in ("tls_ca_cert", "tls_cert", "tls_private_key"):
        path = getattr(model, name)
        if path and not os.path.isfile(path):
            raise ValueError(f"{name}: no such file: {path}")
    if bool(model.tls_cert) != bool(model.tls_private_key):
        raise ValueError("tls_cert and tls_private_key go together (mutual TLS needs both)")
    if not model.consumer_groups and not model.monitor_unlisted_consumer_groups:
        raise ValueError("consumer_groups is empty: list groups to watch, or set monitor_unlisted_consumer_groups: true")
    return model
