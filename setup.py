"""Package discovery only; metadata lives in pyproject.toml.

tasks/ sits at the top of the repository so task definitions are easy to find and edit,
but it installs as ``selfsup.tasks``: no generic top-level module named ``tasks`` lands
in site-packages. Namespace discovery keeps YAML-only task folders as package data.
"""
from setuptools import find_namespace_packages, setup

packages = ["selfsup", "selfsup.tasks"]
packages += [f"selfsup.{p}" for p in find_namespace_packages("selfsup", exclude=["*__pycache__*"])]
packages += [f"selfsup.tasks.{p}" for p in find_namespace_packages("tasks", exclude=["*__pycache__*"])]

setup(packages=packages, package_dir={"selfsup": "selfsup", "selfsup.tasks": "tasks"})
