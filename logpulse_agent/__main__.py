from logpulse_agent.cli import main

main()
