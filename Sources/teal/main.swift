import TealCLI
TealCommand.main()
