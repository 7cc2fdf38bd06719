"""What may be signed: rules on method, account and client, pre-trade checks on parameters, and the halt
switch. Pure checks raising `PolicyDenied`, plus the halt flag's one file."""
