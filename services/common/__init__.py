"""What every Earshot service shares: settings, audio decoding, message contracts, AMQP topology."""
