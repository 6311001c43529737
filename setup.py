"""Build hook: CFFI compiles the C core (shared_c/) into qora._native at install time."""

from setuptools import setup

setup(cffi_modules=["host/qora/_native_build.py:ffibuilder"])
