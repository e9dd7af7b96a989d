"""One blueprint per concern; the app registers them all."""

from . import instances, metrics, resources, system

ALL_BLUEPRINTS = [system.blueprint, instances.blueprint, resources.blueprint, metrics.blueprint]
