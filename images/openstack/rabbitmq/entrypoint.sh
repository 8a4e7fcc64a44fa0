#!/bin/sh
# Start RabbitMQ in the foreground with the default user from the environment.
# Why a script: Debian's package starts it through systemd; a container wants
# one foreground server whose config carries the run's credentials.
set -eu
cat >/etc/rabbitmq/rabbitmq.conf <<CONF
listeners.tcp.default = 5672
loopback_users = none
default_user = $RABBITMQ_USER
default_pass = $RABBITMQ_PASSWORD
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
CONF
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
# Debian's rabbitmq-server wrapper switches to the rabbitmq user itself.
exec rabbitmq-server
