"""`pimdram requests`: generate a request file (arrivals and lengths, seeded)."""
import click

from ._options import check_output, output_option, overwrite_option, seed_option


@click.command("requests")
@click.option("--count", "-n", type=click.IntRange(min=1), required=True, help="Number of requests.")
@click.option("--rate", type=float, default=float("inf"), show_default="all at once",
              help="Requests per second (mean rate for poisson arrivals).")
@click.option("--arrivals", type=click.Choice(["poisson", "fixed", "burst"]), default="poisson", show_default=True,
              help="poisson: exponential gaps; fixed: every 1/RATE s; burst: all at time 0.")
@click.option("--lengths", default="sharegpt", show_default=True, metavar="NAME|P:O|FILE",
              help="Prompt and output lengths: sharegpt or alpaca (published means, log-normal spread), "
                   "PROMPT:OUTPUT for fixed lengths, or a CSV histogram with prompt_tokens,output_tokens,count.")
@seed_option
@output_option(help="Request file to write (.csv, or .jsonl for JSON Lines).")
@overwrite_option
def command(count, rate, arrivals, lengths, seed, output, overwrite):
    """Write a request file (docs/request-file-format.md): CSV, or JSON Lines when OUTPUT ends in
    .jsonl. The same options and seed give the same file.

    \b
    Examples:
      pimdram requests -n 1000 --rate 2 --lengths sharegpt -o sharegpt.csv
      pimdram requests -n 64 --arrivals burst --lengths 2048:2048 -o batch.jsonl
    """
    import math

    from ..errors import WorkloadError
    from ..serve.requests import LENGTHS, generate_requests, parse_lengths, write_requests

    if math.isnan(rate) or rate <= 0:
        raise WorkloadError(f"--rate must be positive requests per second, got {rate}")
    parsed = parse_lengths(lengths)
    histogram = [parsed] if isinstance(parsed, str) and parsed not in LENGTHS else []
    check_output(output, overwrite, inputs=histogram)
    reqs = generate_requests(count, rate, arrivals, parsed, seed)
    write_requests(output, reqs, overwrite=overwrite)
    mean_p = sum(r.prompt_tokens for r in reqs) / count
    mean_o = sum(r.output_tokens for r in reqs) / count
    click.echo(f"{output}: {count} requests over {reqs[-1].arrival_s:.3f} s, prompt {mean_p:.1f} and output "
               f"{mean_o:.1f} tokens on average")
