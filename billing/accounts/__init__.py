"""Organizations and the people in them: memberships, roles, and who may see what."""
