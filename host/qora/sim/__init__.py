"""Federated-learning simulation: data, models, clients, attacks, and the loop that
the evaluation harness, the MQTT service's simulated fleet and the Flower bridge share."""
