"""What the pages of every app share: organization scoping, the administrators-only guard,
page rendering, and how amounts, allowances and periods read."""
