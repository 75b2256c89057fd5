"""One module per kind (target and fault kinds, probe kinds) and the registry that lists them.

``base`` holds the shapes a kind fills in; ``registry`` the lists everything else reads.
"""
