/**
 * A mount/unmount failure with an errno code for programs and a message that already names the
 * problem in full ("mount point /x does not exist"), printed as is by the CLI.
 */
export class MountError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'MountError';
  }
}
