"""Simulators of location-based providers: ``tocsin simulate lbsms-operator|cbc``."""

from __future__ import annotations

import typer

from tocsin.cli.common import err, fail

simulate_app = typer.Typer(no_args_is_help=True,
                           help="Run a simulated provider (location-based SMS operator, "
                                "cell broadcast centre) until Ctrl-C.")


@simulate_app.command("lbsms-operator")
def lbsms_operator(
    operator: str = typer.Option("op1", "--operator", help="op1, op2 or op3 (synthetic)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8101, "--port", min=1, max=65535),
    key_id: str = typer.Option("k1", "--key-id", help="Callback key id."),
    secret: str = typer.Option(..., "--secret", envvar="TOCSIN_LBSMS_CALLBACK_SECRET",
                               help="HMAC secret that signs callbacks."),
    rate: float = typer.Option(200.0, "--rate", min=1, help="SMS per second."),
    stall_at: float | None = typer.Option(None, "--stall-at", min=0, max=1,
                                          help="Fault: stop sending at this share."),
) -> None:
    """A mobile operator's location-based SMS API on the synthetic cell model."""
    import uvicorn

    from tocsin.channels.simulators.lbsms_operator import (
        SimulatorFaults,
        SimulatorParams,
        create_operator_app,
    )
    from tocsin.geo.cellmodel import SYNTHETIC_OPERATORS

    if operator not in {o.key for o in SYNTHETIC_OPERATORS}:
        raise fail("operator", f"{operator!r} is not op1, op2 or op3")
    app = create_operator_app(operator, params=SimulatorParams(rate_per_s=rate),
                              faults=SimulatorFaults(stall_at=stall_at),
                              callback_secrets={key_id: secret})
    err.print(f"LB-SMS operator simulator {operator} on http://{host}:{port}/lbsms/v1 "
              f"(synthetic cell model)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@simulate_app.command("cbc")
def cbc(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8102, "--port", min=1, max=65535),
) -> None:
    """A cell broadcast centre on osmo-cbc's ECBE paths (/api/ecbe/v1/message)."""
    import uvicorn

    from tocsin.channels.simulators.cbc import create_cbc_app

    err.print(f"CBC simulator on http://{host}:{port}/api/ecbe/v1")
    uvicorn.run(create_cbc_app(), host=host, port=port, log_level="warning")
