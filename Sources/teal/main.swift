import Foundation
import TealCLI

exit(await TealCommand.runMain())
