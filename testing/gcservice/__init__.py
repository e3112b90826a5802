"""A local Globus Compute service: RabbitMQ, a stand-in web service, real endpoints."""
