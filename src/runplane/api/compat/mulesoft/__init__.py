"""MuleSoft RPA style invocation API (`/mulesoft/rpa/api/v2`)."""
