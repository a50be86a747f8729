"""The paperwork SS-009 asks for beside the technical checks, as data the engine applies.

``exceptions`` — the risk register of approved exceptions (§5): an active entry turns a matching
``fail``/``warn`` into ``waived``. ``attestations`` — signed-off statements with evidence (§4): a valid
one turns a matching ``manual`` into ``pass``. Both are YAML files read with a safe loader, validated
strictly (every problem names the entry and its line) and evaluated as of a calendar date.
"""
