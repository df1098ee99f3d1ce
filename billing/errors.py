class BillingError(Exception):
    """A refused billing operation. `code` is stable: pages, the API and tests match on it."""

    def __init__(self, code: str, message: str, **details):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
