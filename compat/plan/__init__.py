"""Whole clusters at once: node inventories, node classes, one ranking per class, and the
Slurm side (features, constraints). ``compat.plan(images, hosts) -> Plan``; spec/plan.md.

``compat.plan`` is both this package and the API function: importing a submodule binds the
package to ``compat.plan``, so the package itself is callable (it calls :func:`plan`).
"""
import sys
import types

from compat.plan.batch import ImagePlan, Plan, VariantPlan, plan

__all__ = ["plan", "Plan", "ImagePlan", "VariantPlan"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return plan(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
