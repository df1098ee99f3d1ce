"""The catalog: features, plans and their versions, and which plans an organization is offered."""
