#!/bin/sh
# Start MariaDB in the foreground, creating the datadir, databases and user on
# first start. Why a script: Debian's package expects systemd or init.d; a
# container wants one foreground mariadbd that answers SIGTERM.
set -eu
datadir=/var/lib/mysql
if [ ! -d "$datadir/mysql" ]; then
    chown mysql:mysql "$datadir"
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db >/dev/null
    mariadbd --user=mysql --skip-networking --socket=/run/mysqld/init.sock &
    pid=$!
    i=0
    until mariadb-admin --socket=/run/mysqld/init.sock ping --silent 2>/dev/null; do
        i=$((i + 1)); [ "$i" -le 300 ] || { echo "rollgate-mariadb: init server did not start" >&2; exit 1; }
        sleep 0.1
    done
    {
        echo "CREATE USER IF NOT EXISTS '$MARIADB_USER'@'%' IDENTIFIED BY '$MARIADB_PASSWORD';"
        for db in $MARIADB_DATABASES; do
            echo "CREATE DATABASE IF NOT EXISTS \`$db\`;"
            echo "GRANT ALL PRIVILEGES ON \`$db\`.* TO '$MARIADB_USER'@'%';"
        done
        echo "FLUSH PRIVILEGES;"
    } | mariadb --socket=/run/mysqld/init.sock
    mariadb-admin --socket=/run/mysqld/init.sock shutdown
    wait "$pid" || true
    echo "rollgate-mariadb: created databases $MARIADB_DATABASES for $MARIADB_USER" >&2
fi
exec mariadbd --user=mysql
