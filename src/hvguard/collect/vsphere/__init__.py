"""VMware vSphere (ESXi / vCenter): pure mappers from vSphere API answers to hvguard's facts.

No collector yet (it comes with the vSphere issue); what is here documents the shapes it will fill.
"""
