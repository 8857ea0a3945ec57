"""The gitops-deploy CrossGuard policy pack, its gRPC client and the CLI-free policy check."""
