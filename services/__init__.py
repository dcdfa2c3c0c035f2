"""Earshot services: one package per service, sharing ``services.common``."""
