from gamead_cli.main import main

main()
