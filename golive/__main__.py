from golive.cli.app import main

main()
