"""Gold configuration (SS-009 11.4.7): a baseline file (``schema``), capture from a target (``capture``),
drift against it (``drift``), remediation through libvirt with undo (``plan``, ``apply``, ``runs``,
``xmledit``) and host settings as an Ansible playbook (``ansible``)."""
