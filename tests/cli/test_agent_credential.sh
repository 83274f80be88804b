# test_agent_credential.sh - the agent unlocks from a systemd credential:
# what LoadCredentialEncrypted=fieldsync-store-key (a key file) or
# fieldsync-store-passphrase puts in $CREDENTIALS_DIRECTORY.  The
# credential is made and opened with systemd-creds itself; it uses the
# null key (--with-key=tpm2-absent) so the test needs no TPM and leaves
# no host secret behind, but the format and the name binding are real.
# Without any secret the agent starts locked; a wrong one keeps it
# locked, and says so without echoing it.
set -e
. "$(dirname "$0")/lib.sh"
command -v systemd-creds > /dev/null || fail "systemd-creds is needed (package systemd)"
at_exit 'kill_agent'

# creds NAME FILE: encrypt FILE as credential NAME and decrypt it into
# $T/creds/NAME, as systemd does before starting the unit.
creds() {
	mkdir -p "$T/creds"
	chmod 700 "$T/creds"
	systemd-creds encrypt --with-key=tpm2-absent --name="$1" "$2" "$T/$1.cred" 2> /dev/null ||
		fail "systemd-creds encrypt failed"
	systemd-creds decrypt --name="$1" "$T/$1.cred" "$T/creds/$1" 2> /dev/null ||
		fail "systemd-creds decrypt failed"
	chmod 400 "$T/creds/$1"
	# The name is bound: under another name it does not decrypt.
	! systemd-creds decrypt --name=other "$T/$1.cred" "$T/other" 2> /dev/null ||
		fail "a credential decrypted under the wrong name"
}

agent_conf
expect_exit 0 fa keygen "$T/store.keyfile"
expect_exit 0 fa --key-file "$T/store.keyfile" init

# A key file as the credential.
creds fieldsync-store-key "$T/store.keyfile"
CREDENTIALS_DIRECTORY="$T/creds" start_agent
wait_log "unlocked"
expect_exit 0 fa status --json
must_contain "$OUT" '"locked":false'
expect_exit 0 fa beneficiary add "full_name=Милошевић Стефан" municipality=Vranje status=idp \
	household_size=2 consent=yes
stop_agent

# No credential and no secret file: locked.
: > "$T/agent.log"
start_agent
wait_log "store locked until 'fieldsync unlock'"
expect_exit 3 fa beneficiary list
expect_exit 0 fa --key-file "$T/store.keyfile" unlock
expect_exit 0 fa beneficiary list
must_contain "$OUT" "Милошевић Стефан"
stop_agent

# A passphrase credential for a passphrase store; a wrong one stays locked.
rm -rf "$DATA" "$T/creds"
expect_exit 0 fs init --kdf interactive
creds fieldsync-store-passphrase "$PASS"
: > "$T/agent.log"
CREDENTIALS_DIRECTORY="$T/creds" start_agent
wait_log "unlocked"
stop_agent
printf 'pogrešna-lozinka\n' > "$T/wrong"
chmod 600 "$T/wrong"
rm -rf "$T/creds"
creds fieldsync-store-passphrase "$T/wrong"
: > "$T/agent.log"
CREDENTIALS_DIRECTORY="$T/creds" start_agent
wait_log "wrong passphrase"
must_not_contain "$(cat "$T/agent.log")" "pogrešna"
expect_exit 0 fa status --json
must_contain "$OUT" '"locked":true'
stop_agent
echo "ok: agent credentials"
