"""Repo verification: signatures, content addressing, the Merkle Search Tree, commit proofs."""
