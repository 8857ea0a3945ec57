"""`python -m deploy up --stack <stack>`: the rollback-aware deploy on Pulumi's Automation API."""
