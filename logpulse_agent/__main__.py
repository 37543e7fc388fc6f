from logpulse_agent.cli import main

main(prog_name="logpulse-agent")
